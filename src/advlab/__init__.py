"""advlab: adversarial machine learning for images and constrained tabular security data."""

from advlab.domain import Domain
from advlab.norms import Norm
from advlab.threat import ThreatModel

__version__ = "0.1.0"

__all__ = ["Domain", "Norm", "ThreatModel", "__version__"]
