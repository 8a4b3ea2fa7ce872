"""KubeStack AI: diagnostics for Redis, Kafka and MySQL fleets.

One import namespace, layered so that imports flow one way::

    plugins  <-  storage  <-  workers  <-  scheduler  <-  ksa (the command line)
                    ^
                    +-- web (read-only view, metrics, notifications) beside workers

``kubestack_ai.plugins`` is the plugin framework and the builtin plugins (no Celery, no
database); ``kubestack_ai.storage`` is SQLAlchemy; ``kubestack_ai.workers`` is the
Celery app (``celery -A kubestack_ai.workers worker``); ``kubestack_ai.scheduler`` is
beat; ``kubestack_ai.ksa`` is the ``ksa`` command.
"""
