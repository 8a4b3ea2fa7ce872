"""The ``ksa`` command: the front door to KubeStack AI."""
