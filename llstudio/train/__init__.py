"""The training stage: data, models and the training loop that gives the weights at the sampled steps.

``data`` (built-in, synthetic and local torchvision datasets, the fixed evaluation subset), ``models`` (MLP,
logistic regression, the small CNN, reduced torchvision ResNet/VGG, custom factories; losses), ``training``
(Trajectory, the seeded training loop), ``runs`` (several runs on one landscape, interpolation endpoints,
checkpoint files read with ``weights_only``), ``own_data`` (data from a factory or from .npz/.pt files),
``recorder`` (llstudio.Recorder for a user's own training loop) and ``sources`` (``[training] source``: a
recorded run or a folder of checkpoints as the Trajectory capture films).
"""
