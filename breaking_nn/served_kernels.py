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
            raise web.HTTPError(503, FULL, reason="The app is full")
        self._starting += 1
        try:
            return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
        finally:
            self._starting -= 1
