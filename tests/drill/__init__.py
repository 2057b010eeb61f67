"""The multi-site failover drill (`make drill`): real etcd, Patroni, PostgreSQL 15, Redis with
Sentinel and API replicas in three network namespaces, nginx in front, client load through it;
then the PostgreSQL primary's whole site is lost, and the drill checks that no acknowledged
write was lost or duplicated, how long writes stopped, and that the lost site rejoins.

The shape it runs is deploy/multisite/ (the templates an operator copies); run.py says what
happens in which order, topology.py how a site is built and lost, sites.py what runs in each,
load.py what the clients do, verify.py what is checked.
"""
