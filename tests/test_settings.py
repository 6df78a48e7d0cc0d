"""Settings are validated at start-up with errors that name the variable."""

from __future__ import annotations

import pytest

from pipeline.settings import ConfigError, Settings

LOCAL = {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}


def test_defaults_are_valid() -> None:
    s = Settings.from_env(LOCAL)
    assert s.heartbeat_enabled and s.heartbeat_interval * 3 <= s.visibility_timeout
    # a long PDF outlives the visibility timeout many times over: the heartbeat covers it
    assert s.task_time_limit > 20 * 60 > s.visibility_timeout
    assert s.queue_name("fetch") == "filesearch-fetch"
    assert s.dlq_name("fetch") == "filesearch-fetch-dlq"
    s.check_aws_endpoints()


@pytest.mark.parametrize("env, variable", [
    ({"VISIBILITY_TIMEOUT": "soon"}, "VISIBILITY_TIMEOUT"),
    ({"MAX_RETRIES": "-1"}, "MAX_RETRIES"),
    ({"RETRY_BACKOFF_MAX": "901"}, "RETRY_BACKOFF_MAX"),
    ({"INDEX_BACKEND": "elastic"}, "INDEX_BACKEND"),
    ({"AWS_ENDPOINT_URL_SQS": "127.0.0.1:4566"}, "AWS_ENDPOINT_URL_SQS"),
    ({"FLOWER_BASIC_AUTH": "nopassword"}, "FLOWER_BASIC_AUTH"),
    ({"WORK_BUCKET": "filesearch-uploads"}, "WORK_BUCKET"),
])
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({**LOCAL, **env})


def test_without_heartbeat_hard_time_limit_must_be_below_visibility_timeout() -> None:
    off = {**LOCAL, "HEARTBEAT": "off"}
    with pytest.raises(ConfigError, match=r"TASK_TIME_LIMIT.*VISIBILITY_TIMEOUT"):
        Settings.from_env({**off, "VISIBILITY_TIMEOUT": "300", "TASK_TIME_LIMIT": "300",
                           "TASK_SOFT_TIME_LIMIT": "280", "EXTRACT_MAX_SECONDS": "250"})
    ok = Settings.from_env({**off, "VISIBILITY_TIMEOUT": "301", "TASK_TIME_LIMIT": "300",
                            "TASK_SOFT_TIME_LIMIT": "280", "EXTRACT_MAX_SECONDS": "250"})
    assert ok.visibility_timeout == 301


def test_with_heartbeat_visibility_must_cover_three_beats() -> None:
    with pytest.raises(ConfigError, match=r"HEARTBEAT_INTERVAL \(25s\).*third"):
        Settings.from_env({**LOCAL, "HEARTBEAT_INTERVAL": "25"})
    # a task may run far longer than the visibility timeout: the heartbeat extends it
    s = Settings.from_env({**LOCAL, "VISIBILITY_TIMEOUT": "30", "HEARTBEAT_INTERVAL": "10"})
    assert s.task_time_limit > s.visibility_timeout


def test_local_profile_refuses_to_fall_back_to_real_aws() -> None:
    settings = Settings.from_env({})  # no endpoint at all
    with pytest.raises(ConfigError, match=r"AWS_ENDPOINT_URL_SQS.*real AWS"):
        settings.check_aws_endpoints()
    remote = Settings.from_env({"AWS_ENDPOINT_URL": "https://sqs.us-east-1.amazonaws.com"})
    with pytest.raises(ConfigError, match="loopback"):
        remote.check_aws_endpoints()
    Settings.from_env({"PIPELINE_PROFILE": "production"}).check_aws_endpoints()


def test_service_specific_endpoint_wins_over_global() -> None:
    s = Settings.from_env({**LOCAL, "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000"})
    assert s.s3_endpoint == "http://127.0.0.1:9000"
    assert s.sqs_endpoint == "http://127.0.0.1:4566"


def test_retry_limit_per_stage() -> None:
    s = Settings.from_env({**LOCAL, "MAX_RETRIES": "4", "MAX_RETRIES_INDEX": "9"})
    assert (s.retries_for("fetch"), s.retries_for("extract"), s.retries_for("index")) == (4, 4, 9)
    with pytest.raises(ConfigError, match="MAX_RETRIES_FETCH"):
        Settings.from_env({**LOCAL, "MAX_RETRIES_FETCH": "many"})
