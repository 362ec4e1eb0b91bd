"""The data layer: fetch or generate CIFAR-format images, store them in data/cifar10/, check them, split them."""
