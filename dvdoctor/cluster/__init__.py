"""The Cluster port and what talks to a namespace through it: the Kubernetes adapter, retries, the lock, one-shot pods."""
