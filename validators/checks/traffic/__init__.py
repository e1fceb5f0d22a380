"""Traffic-policy checks (TRAFFIC-0xx): Services, the AKS load balancer, the WebSocket Ingress, Gateway API
routes and NetworkPolicy reachability. Pure functions over the facts of validators.collect.manifests
(`vmq-validate plan`) or validators.collect.kube_traffic (`vmq-validate cluster`)."""
