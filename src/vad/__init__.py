"""vad: video anomaly detection with spatio-temporal dissociation (Chang et al., Pattern Recognition 2021)."""

__version__ = "0.1.0"
