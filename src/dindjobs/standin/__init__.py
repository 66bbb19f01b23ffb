"""A Jenkins 2.580 stand-in: the REST behaviour python-jenkins and JJB rely on, standard library only.

It runs where a real Jenkins cannot (tests, the offline image) and follows
``../shared/jenkins-rest-contract.md``: lifecycle (refused, 503 loading, ready, restart, fatal boot),
Basic auth with passwords and API tokens, session-bound crumbs, folders and freestyle jobs
persisted in Jenkins' home layout, a queue with quiet period and coalescing, and builds that run
each ``hudson.tasks.Shell`` step with ``sh -xe`` in the job's workspace.

In-process use::

    from dindjobs.standin import StandIn, User
    from dindjobs.config import Secret

    s = StandIn(home, users=[User("admin", Secret("pw", "test"))], quiet_period=0.1).start()
    ... s.url ...
    s.stop()

Command line: ``python3 -m dindjobs.standin --home DIR --port N`` (see ``--help``).
"""

from dindjobs.standin.app import StandIn
from dindjobs.standin.model import VERSION
from dindjobs.standin.security import User

__all__ = ["VERSION", "StandIn", "User"]
