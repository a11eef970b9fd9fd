"""`rapport kafka <tool>`: which of Kafka's main classes runs, on which broker."""
from __future__ import annotations

from pathlib import Path

import pytest

from shared.cli import build_parser
from shared.settings import load_settings
from shared.stack import kafka


@pytest.fixture
def settings(tmp_path):
    return load_settings({}, cache_dir=tmp_path, kafka_bootstrap="kafka-1:9092,kafka-2:9092")


def test_a_tool_runs_on_the_stack_s_bootstrap_servers_unless_told_otherwise(settings):
    argv = kafka.tool_argv(settings, "consumer-groups", ["--list"])

    assert argv[-4:] == ["org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                         "--bootstrap-server", "kafka-1:9092,kafka-2:9092", "--list"]


@pytest.mark.parametrize("given", [["--bootstrap-server", "elsewhere:9092"], ["--bootstrap-server=elsewhere:9092"]])
def test_a_bootstrap_server_given_is_the_only_one_passed(settings, given):
    argv = kafka.tool_argv(settings, "topics", ["--list", *given])

    assert argv[-1 - len(given):] == ["--list", *given]
    assert "kafka-1:9092,kafka-2:9092" not in argv


def test_a_tool_runs_on_the_broker_s_jars_and_the_tools_beside_them(settings):
    argv = kafka.tool_argv(settings, "topics", ["--list"])

    classpath = argv[argv.index("-cp") + 1].split(":")
    assert classpath == [f"{kafka.libs_dir(settings)}/*", f"{kafka.tools_dir(settings)}/*"]
    assert kafka.tools_dir(settings).parent == kafka.libs_dir(settings).parent


def test_the_tools_are_resolved_at_the_broker_s_version():
    pom = (Path(kafka.DEPLOY) / "tools-pom.xml").read_text()
    assert "<artifactId>kafka-tools</artifactId>" in pom and "<version>${kafka.version}</version>" in pom


def test_rapport_kafka_passes_every_argument_after_the_tool_to_it():
    args = build_parser().parse_args(["kafka", "consumer-groups", "--describe", "--group", "feed.posts", "--help"])

    assert (args.tool, args.args) == ("consumer-groups", ["--describe", "--group", "feed.posts", "--help"])


def test_an_unknown_tool_is_refused_before_any_java_runs(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["kafka", "no-such-tool"])
    assert "invalid choice" in capsys.readouterr().err
