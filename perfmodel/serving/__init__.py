"""Serving under load: request traffic, a discrete-event simulation of continuous batching
on replicas behind a router, priced per iteration by perfmodel.inference."""
