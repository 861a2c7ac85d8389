"""The served app's kernel manager: at most ``max_kernels`` kernels; page M+1 gets "the app is full".

jupyter_server has no such limit, so docker/start-app.sh plugs this class in
(``--VoilaConfiguration.multi_kernel_manager_class=breaking_nn.served_kernels.LimitedKernelManager``,
``--LimitedKernelManager.max_kernels=M``). Culling stays jupyter_server's own
(``--MappingKernelManager.cull_idle_timeout`` and friends, set by start-app.sh).
A refused page is an HTTP 503 whose page says, in one line, to try again in a minute.
"""
from __future__ import annotations

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Integer

FULL = "The app is full: every place is taken. Try again in a minute (an idle page gives its place back)."


class LimitedKernelManager(AsyncMappingKernelManager):
    """An AsyncMappingKernelManager that refuses a new kernel once ``max_kernels`` live or are starting."""

    max_kernels = Integer(0, config=True, help="Most kernels at once (0: no limit).")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._starting = 0

    async def start_kernel(self, *, kernel_id=None, path=None, **kwargs):
        if kernel_id is None and self.max_kernels and len(self.list_kernel_ids()) + self._starting >= self.max_kernels:
            self.log.warning("the app is full: %d kernels (max_kernels); a page was refused", self.max_kernels)
            raise web.HTTPError(503, FULL, reason="The app is full, try again in a minute")
        self._starting += 1
        try:
            return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        finally:
            self._starting -= 1


def set_xsrf_cookie(request_handler, notebook=None, cwd=None) -> None:
    """Voilà's prelaunch hook: give the page tornado's ``_xsrf`` cookie.

    Voilà 0.5.13's page ends its kernel on ``beforeunload`` with a beacon to
    ``/voila/api/shutdown/<id>`` carrying the ``_xsrf`` cookie's value; but its page
    handler never sets that cookie, so the beacon is refused with HTTP 403 ("'_xsrf'
    argument missing from POST") and the kernel lives on. Reading ``xsrf_token``
    sets the cookie (before the page's first byte is sent), and the beacon works.
    """
    request_handler.xsrf_token  # noqa: B018 - the property sets the cookie
