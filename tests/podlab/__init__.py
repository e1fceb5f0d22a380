"""The pod lab: the chart's pods run in real containers (podman + runc), as a kubelet would run them."""
