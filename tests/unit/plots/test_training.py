"""Training curves: epochs are whole numbers on the axis."""

from seecam.plots.training import training_curves


def history(epochs: int) -> list[dict[str, float]]:
    return [{"epoch": e, "train_loss": 2 / e, "val_loss": 2.1 / e, "train_acc": 0.2 * e, "val_acc": 0.19 * e}
            for e in range(1, epochs + 1)]


def test_epoch_ticks_are_whole_epochs():
    """Issue 26: with 3 or 4 epochs the axis ticked at 1.5, 2.5."""
    for epochs in (2, 3, 4, 50):
        figure = training_curves({"cnn": history(epochs), "se": history(epochs)})
        figure.canvas.draw()
        for ax in figure.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), (epochs, ticks)
