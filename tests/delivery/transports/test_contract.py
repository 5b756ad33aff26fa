"""The backup transports plug into the worker's dispatch by one contract."""

from __future__ import annotations

import inspect
from types import ModuleType

import pytest

from fieldreport.delivery.transports import email, ftp, sftp
from tests.delivery.transports.conftest import make_bundle


@pytest.mark.parametrize("module", [email, ftp, sftp])
def test_module_exposes_send_and_check_url(module: ModuleType) -> None:
    send = module.send
    assert inspect.iscoroutinefunction(send)
    parameters = inspect.signature(send).parameters
    assert list(parameters) == ["url", "bundle", "token", "timeout", "allow_private"]
    for name in ("token", "timeout", "allow_private"):
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
    check = inspect.signature(module.check_url)
    assert list(check.parameters) == ["url"]


@pytest.mark.parametrize(
    ("module", "url"),
    [
        (email, "smtp://u:hunter22@h?to=a@b.c&from=x@y.z&bogus=1"),
        (ftp, "ftp://u:hunter22@h/x?bogus=1"),
        (sftp, "sftp://u:hunter22@h/x?bogus=1"),
    ],
)
async def test_invalid_url_is_a_permanent_result_without_secrets(
    module: ModuleType, url: str
) -> None:
    with pytest.raises(ValueError) as info:
        module.check_url(url)
    assert "hunter22" not in str(info.value)
    result = await module.send(url, make_bundle(), token=None, timeout=5, allow_private=True)
    assert not result.ok and result.permanent
    assert "unknown parameter 'bogus'" in (result.error or "")
    assert "hunter22" not in repr(result)
