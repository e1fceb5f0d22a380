"""MQTT canaries (paho-mqtt) and the client heartbeat."""
