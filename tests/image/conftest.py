"""The image tests need podman (rootful, runc) and debootstrap: the pod lab's own availability check."""

from tests.podlab.conftest import podlab_available  # noqa: F401 - the autouse skip-or-fail fixture
