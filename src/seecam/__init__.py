"""seecam: train a plain CIFAR-10 CNN and its Squeeze-and-Excitation twin, compare and explain them."""

__version__ = "0.1.0"
