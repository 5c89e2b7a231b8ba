"""Identity and access at a refstore service: who am I, users, tokens, teams.

Beside the catalog proper (:class:`~refstore.catalog.http.HttpCatalog`),
over the same transport. Answers are plain dicts, as the service sends
them; tokens appear only in the answers that create them.
"""

from __future__ import annotations

from typing import Any

from refstore.catalog.http_transport import Transport, quote

__all__ = ["ServiceAdmin"]

JSON = dict[str, Any]


class ServiceAdmin:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def _call(self, method: str, path: str, **options: Any) -> Any:
        options.setdefault("idempotent", method in ("GET", "PUT"))
        return self.transport.json(method, "/api/v1" + path, **options)

    def whoami(self) -> JSON:
        answer: JSON = self._call("GET", "/whoami")
        return answer

    def create_user(self, name: str, *, admin: bool = False) -> JSON:
        answer: JSON = self._call("POST", "/users", body={"name": name, "admin": admin})
        return answer

    def users(self) -> list[JSON]:
        return list(self._call("GET", "/users")["users"])

    def disable_user(self, name: str) -> JSON:
        answer: JSON = self._call("PUT", "/users" + quote(name, "disabled"))
        return answer

    def enable_user(self, name: str) -> JSON:
        # Enabling twice is enabling once: safe to retry.
        path = "/users" + quote(name, "disabled")
        answer: JSON = self._call("DELETE", path, idempotent=True)
        return answer

    def create_token(self, label: str, user: str | None = None) -> JSON:
        answer: JSON = self._call(
            "POST", "/tokens", body={"label": label, "user": user}
        )
        return answer

    def tokens(self, user: str | None = None) -> list[JSON]:
        return list(self._call("GET", "/tokens", query={"user": user})["tokens"])

    def revoke_token(self, token_id: int) -> JSON:
        answer: JSON = self._call("DELETE", f"/tokens/{token_id}")
        return answer

    def create_team(self, name: str) -> JSON:
        answer: JSON = self._call("POST", "/teams", body={"name": name})
        return answer

    def team(self, name: str) -> JSON:
        answer: JSON = self._call("GET", "/teams" + quote(name))
        return answer

    def delete_team(self, name: str) -> JSON:
        answer: JSON = self._call("DELETE", "/teams" + quote(name))
        return answer

    def set_member(self, team: str, user: str, role: str = "member") -> JSON:
        path = "/teams" + quote(team, "members", user)
        answer: JSON = self._call("PUT", path, body={"role": role})
        return answer

    def remove_member(self, team: str, user: str) -> JSON:
        path = "/teams" + quote(team, "members", user)
        answer: JSON = self._call("DELETE", path)
        return answer

    def set_visibility(self, entity: str, project: str, visibility: str) -> JSON:
        path = "/projects" + quote(entity, project, "visibility")
        answer: JSON = self._call("PUT", path, body={"visibility": visibility})
        return answer
