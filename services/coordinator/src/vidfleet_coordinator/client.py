"""The vidfleet CLI's side of the coordinator API: a small typed HTTP client with one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from vidfleet_common.errors import VidfleetError
from vidfleet_common.settings import scrub_url


class ServerError(VidfleetError):
    """The coordinator refused a request or could not be reached; the message is one line."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # None: not reached at all

    @property
    def transient(self) -> bool:
        """Worth asking again: the coordinator is restarting, or its Redis is (503)."""
        return self.status is None or self.status in (502, 503, 504)


class CoordinatorClient:
    def __init__(self, server: str, token: str | None, *, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot reach the coordinator at {scrub_url(self.server)}: {exc}") from None
        if response.status_code >= 400 and not (path == "/health" and response.status_code == 503):
            raise ServerError(f"{_detail(response)} (HTTP {response.status_code})", response.status_code)
        return response.json()

    def submit(self, inputs: list[str], config: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/jobs", json={"inputs": inputs, "config": config})

    def status(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")

    def jobs(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._call("GET", "/jobs", params={"limit": limit})

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/jobs/{job_id}/cancel")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def tasks(self) -> dict[str, Any]:
        return self._call("GET", "/tasks")

    def add_stream(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/streams", json=spec)

    def streams(self) -> list[dict[str, Any]]:
        return self._call("GET", "/streams")

    def remove_stream(self, name: str) -> None:
        try:
            response = self.http.delete(f"/streams/{name}")
        except httpx.HTTPError as exc:
            raise ServerError(f"cannot reach the coordinator at {scrub_url(self.server)}: {exc}") from None
        if response.status_code >= 400:
            raise ServerError(f"{_detail(response)} (HTTP {response.status_code})", response.status_code)

    def tail_tracks(self, name: str, *, follow: bool, last: int, seconds: float | None) -> Iterator[dict[str, Any]]:
        return self._tail(f"/streams/{name}/tracks", follow=follow, last=last, seconds=seconds)

    def tail_events(self, name: str, *, follow: bool, last: int, seconds: float | None) -> Iterator[dict[str, Any]]:
        return self._tail(f"/streams/{name}/events", follow=follow, last=last, seconds=seconds)

    def _tail(self, path: str, *, follow: bool, last: int, seconds: float | None) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"follow": follow, "last": last}
        if seconds:
            params["seconds"] = seconds
        try:
            with self.http.stream("GET", path, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ServerError(f"{_detail(response)} (HTTP {response.status_code})", response.status_code)
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            raise ServerError(f"lost the coordinator at {scrub_url(self.server)}: {exc}") from None

    def close(self) -> None:
        self.http.close()


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, str):
        return detail
    return response.text.strip().splitlines()[0] if response.text.strip() else response.reason_phrase
