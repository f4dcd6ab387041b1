"""Polling a host (:mod:`funding_monitor.poller`): one poll at a time, a refresh asked for
meanwhile repeated once."""

from __future__ import annotations

from funding_monitor.hosts import Host
from funding_monitor.model import PollResult
from funding_monitor.poller import Poller
from funding_monitor.sources import LocalSource
from monitor_helpers import FIXED_NOW


def test_host_runs_one_poll_at_a_time_and_repeats_one_asked_for_meanwhile(tmp_path):
    host = Host(0, Poller(LocalSource(tmp_path / "s.json"), interval=2.0))
    assert host.try_start_poll() and host.take_requests() == (False, False)
    assert not host.try_start_poll(), "one in flight: the second waits"
    host.want_journal = True
    assert host.finish_poll(PollResult(FIXED_NOW, True)) == 0, "asked for meanwhile: at once"
    assert host.try_start_poll() and host.take_requests() == (True, False)
    assert host.take_requests() == (False, False), "served once"
    host.want_history = True
    assert host.finish_poll(PollResult(FIXED_NOW, True)) == 0, "the history too"
    assert host.try_start_poll() and host.take_requests() == (False, True)
    assert host.finish_poll(PollResult(FIXED_NOW, True)) == 2.0, "then the interval"
    assert host.view.polls == 3 and not host.in_flight
