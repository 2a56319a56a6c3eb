"""One module per repair, paired with a check; installed as `dvdoctor.fixes`."""
