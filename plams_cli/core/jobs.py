"""Jobs: ``Job`` (the base), ``SingleJob`` (one runscript), ``ShellJob``, ``MultiJob`` (children).

Their public home, as PLAMS's ``scm.plams.core.basejob``: each lives in a module of its
own (:mod:`plams_cli.core.job`, :mod:`plams_cli.core.singlejob`,
:mod:`plams_cli.core.multijob`); what drives them is :mod:`plams_cli.core.lifecycle`.
"""

from __future__ import annotations

from plams_cli.core.job import Job as Job
from plams_cli.core.multijob import MultiJob as MultiJob
from plams_cli.core.singlejob import ShellJob as ShellJob
from plams_cli.core.singlejob import SingleJob as SingleJob

__all__ = ["Job", "SingleJob", "MultiJob", "ShellJob"]
