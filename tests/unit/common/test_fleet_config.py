"""The Celery and Redis settings every fleet process shares."""

import ssl

import redis

from vidfleet_common.fleet import DetectRequest, celery_config, detect_task_id, redis_client
from vidfleet_common.settings import Settings


def test_celery_is_json_only_with_late_acks_and_prefetch_one() -> None:
    config = celery_config(Settings(CELERY_BROKER_URL="redis://:pw@redis:6379/0", visibility_timeout=7200))
    assert config["accept_content"] == ["json"] and config["task_serializer"] == "json"
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"] and config["worker_prefetch_multiplier"] == 1
    assert config["broker_transport_options"]["visibility_timeout"] == 7200
    assert config["broker_transport_options"]["unacked_restore_interval"] == 60
    assert config["broker_connection_max_retries"] is None
    assert "broker_use_ssl" not in config


def test_rediss_urls_verify_the_server_certificate() -> None:
    settings = Settings(CELERY_BROKER_URL="rediss://:pw@redis:6380/0", redis_ca_file="/etc/vidfleet/ca.pem")
    assert celery_config(settings)["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/etc/vidfleet/ca.pem"}
    client = redis_client(settings)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["ssl_cert_reqs"] == ssl.CERT_REQUIRED and kwargs["ssl_ca_certs"] == "/etc/vidfleet/ca.pem"
    assert kwargs["password"] == "pw"
    assert issubclass(client.connection_pool.connection_class, redis.SSLConnection)
    # a URL that says how to verify is left alone
    explicit = Settings(CELERY_BROKER_URL="rediss://redis:6380/0?ssl_cert_reqs=required")
    assert "broker_use_ssl" not in celery_config(explicit)


def test_detect_requests_are_plain_json_with_deterministic_task_ids() -> None:
    request = DetectRequest.model_validate(
        {"job_id": "j", "video": {"source": "/in/a.mp4", "name": "a"}, "config": {"batch": 2}, "out_dir": "/out/j"}
    )
    assert request.model_dump(mode="json")["video"]["name"] == "a"
    assert detect_task_id("j", "cam1/a") == "j:cam1/a"
