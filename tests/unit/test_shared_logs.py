"""Log lines name their service whatever writes them: structlog or a library's stdlib logger,
in the thread that configured logging or any other."""
from __future__ import annotations

import json
import logging
import threading

import structlog

from shared import logs


def lines_written(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_lines_from_any_thread_and_from_stdlib_loggers_carry_the_service(monkeypatch, capsys):
    monkeypatch.setattr(logs, "_configured", False)
    logs.configure_logging("obs-test", "INFO")
    capsys.readouterr()

    def write():
        structlog.get_logger("elsewhere").warning("from a thread")
        logging.getLogger("some.library").warning("a library's warning")
        logging.getLogger("py.warnings").warning("DeprecationWarning: old call")  # logging.captureWarnings

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    written = lines_written(capsys)
    assert [line["event"] for line in written] == ["from a thread", "a library's warning",
                                                   "DeprecationWarning: old call"]
    assert all(line["service"] == "obs-test" and line["level"] == "warning" for line in written)


def test_a_stdlib_record_formats_as_one_json_object_with_the_service():
    record = logging.LogRecord("gunicorn.error", logging.INFO, __file__, 1, "Booting worker with pid: %s",
                               (42,), None)
    line = json.loads(logs.json_formatter("follows").format(record))
    assert line["event"] == "Booting worker with pid: 42"
    assert line["service"] == "follows" and line["level"] == "info" and "timestamp" in line


def test_a_line_naming_its_own_service_keeps_it():
    assert logs.ServiceName("follows")(None, "info", {"service": "feed"}) == {"service": "feed"}


def test_a_thread_dying_of_an_exception_is_one_json_line_with_its_traceback(monkeypatch, capsys):
    monkeypatch.setattr(logs, "_configured", False)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)  # restored after the test
    logs.configure_logging("obs-test", "INFO")
    capsys.readouterr()

    def fail():
        raise RuntimeError("the broker said no")

    thread = threading.Thread(target=fail, name="relay")
    thread.start()
    thread.join()
    [line] = lines_written(capsys)
    assert line["event"] == "thread died" and line["thread"] == "relay" and line["service"] == "obs-test"
    assert "RuntimeError: the broker said no" in line["exception"]


def test_a_line_with_what_fast_json_refuses_is_still_one_json_line(monkeypatch, capsys):
    monkeypatch.setattr(logs, "_configured", False)
    logs.configure_logging("obs-test", "INFO")
    capsys.readouterr()
    structlog.get_logger("elsewhere").warning("odd values", partitions={3: "t"}, huge=2**70, thing=object())
    [line] = lines_written(capsys)
    assert line["partitions"] == {"3": "t"} and line["huge"] == 2**70 and line["thing"].startswith("<object")
