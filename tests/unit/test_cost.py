"""What a model costs: exact counts, and timings as the median and range of rounds that interleave the models."""

import torch

from seecam.cost import flops_per_image, measure_costs, timed_rounds, timing_spread
from seecam.models import build_model, count_parameters
from seecam.params import CnnParams, Params, SeParams


def test_rounds_interleave_the_models_so_a_change_of_load_hits_both():
    calls: list[str] = []
    timings = timed_rounds({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3, repeats=2,
                           device=torch.device("cpu"), warmup=1)
    assert calls == ["a", "b"] + ["a", "a", "b", "b"] * 3  # warm-up, then per round each model's repeats in turn
    assert all(len(seconds) == 3 and min(seconds) > 0 for seconds in timings.values())


def test_costs_of_two_models_on_cpu():
    models = {"cnn": build_model("cnn", CnnParams(channels=[4, 8, 8], hidden=8)),
              "se": build_model("se", SeParams(channels=[4, 8, 8], hidden=8, reduction=2))}
    costs = measure_costs(models, torch.device("cpu"), repeats=3, batch=4, rounds=3)
    for name, model in models.items():
        cost = costs[name]
        assert cost["parameters"] == count_parameters(model)
        for key in ("latency_ms", "throughput_images_per_s"):
            assert 0 < cost[f"{key}_q1"] <= cost[key] <= cost[f"{key}_q3"], (name, key)
        assert "peak_memory_mb" not in cost  # the CPU has no allocator statistics to read
    assert costs["se"]["parameters"] > costs["cnn"]["parameters"]
    # by hand, as the card's below: convs 3->4 at 32 px, 4->8 at 16, 8->8 at 8; fc1 8x4x4 -> 8, fc2 8 -> 10;
    # SE (r = 2) adds C -> C/2 -> C per block
    tiny = conv_flops(3, 4, 32) + conv_flops(4, 8, 16) + conv_flops(8, 8, 8) + 2 * 128 * 8 + 2 * 8 * 10
    assert (costs["cnn"]["flops_per_image"], costs["se"]["flops_per_image"]) == (
        tiny, tiny + sum(2 * 2 * channels * (channels // 2) for channels in (4, 8, 8)))


def test_one_stalled_round_does_not_set_the_spread():
    """The demo on a machine at load 6: one round's median was 416 ms among rounds of 0.7-0.9 ms, and a min-max
    range made the table print "0 [0, 420]". The interquartile range of the rounds leaves such a round out."""
    assert timing_spread("latency_ms", [0.80, 0.84, 0.82, 416.0, 0.79]) == {
        "latency_ms": 0.82, "latency_ms_q1": 0.80, "latency_ms_q3": 0.84}


def conv_flops(c_in: int, c_out: int, side: int) -> int:
    return 2 * c_in * c_out * 3 * 3 * side * side  # a multiply and an add per weight per output pixel


# The card's layers, by hand: three 3x3 convs at 32, 16 and 8 pixels, fc1 2048->512, fc2 512->10; SE adds two
# small FC layers per block (C -> C/16 -> C). Pooling, BN and activations are not multiply-adds.
CNN_FLOPS = conv_flops(3, 32, 32) + conv_flops(32, 64, 16) + conv_flops(64, 128, 8) + 2 * 2048 * 512 + 2 * 512 * 10
SE_EXTRA = sum(2 * 2 * channels * (channels // 16) for channels in (32, 64, 128))


def test_the_cards_models_cost_the_flops_their_layers_add_up_to():
    params = Params()
    cnn, se = (flops_per_image(build_model(name, params.models[name]), torch.device("cpu")) for name in ("cnn", "se"))
    assert (cnn, se) == (CNN_FLOPS, CNN_FLOPS + SE_EXTRA) == (22_751_232, 22_756_608)
