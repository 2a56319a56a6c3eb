"""dvdoctor: diagnose, repair and drive DV 1.5.0 backup and restore on Cloud Pak for Data."""

__version__ = "0.1.0"
