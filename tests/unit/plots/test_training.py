"""Training curves: epochs are whole numbers on the axis."""

from seecam.history import EpochRow
from seecam.plots.training import training_curves


def history(epochs: int) -> list[EpochRow]:
    return [EpochRow(epoch=e, train_loss=2 / e, val_loss=2.1 / e, train_acc=0.2 * e, val_acc=0.19 * e, lr=1e-3,
                     epoch_seconds=1.0) for e in range(1, epochs + 1)]


def test_epoch_ticks_are_whole_epochs():
    """Issue 26: with 3 or 4 epochs the axis ticked at 1.5, 2.5."""
    for epochs in (2, 3, 4, 50):
        figure = training_curves({"cnn": history(epochs), "se": history(epochs)})
        figure.canvas.draw()
        for ax in figure.axes:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            assert ticks and all(float(t).is_integer() for t in ticks), (epochs, ticks)


def test_every_model_has_its_own_colour_and_the_legend_grows_by_one_entry_per_model():
    """Issue 25: the curves zipped the models with two colours, so a third model was not drawn."""
    names = ["cnn", "se", "se8", "eca", "eca5"]
    figure = training_curves({name: history(3) for name in names})
    for ax in figure.axes:
        lines = ax.get_lines()
        assert len(lines) == 2 * len(names)  # train and val of every model
        colours = {name: {line.get_color() for line in lines if line.get_gid() == name} for name in names}
        assert all(len(c) == 1 for c in colours.values()) and len({c.pop() for c in colours.values()}) == len(names)
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels == [*names, "train", "validation"]  # a colour per model, a line style per split
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legend = figure.legends[0].get_window_extent(renderer)
    assert not any(legend.overlaps(ax.get_window_extent(renderer)) for ax in figure.axes)  # beside the axes
