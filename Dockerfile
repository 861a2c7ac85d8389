# breaking-nn: BVLC Caffe (built from source) + Jupyter Lab + the tutorial.
#
# GPU (default): Debian 12, CUDA 13.0 from NVIDIA's PyPI wheels, no cuDNN,
# for sm_75 ... sm_90 plus PTX; runs with an NVIDIA driver >= 580:
#   docker build -t breaking-nn .
# CPU:
#   docker build -t breaking-nn:cpu --build-arg CAFFE_DEVICE=cpu .
#
# Build arguments:
#   BASE_IMAGE     the build stage (compilers; a GPU build adds nvcc from the wheels)
#   RUNTIME_IMAGE  the final stage (no compilers; same distribution as BASE_IMAGE)
#   CAFFE_DEVICE   cuda | cpu
#   CUDA_ARCH      GPU architectures compiled for (compute capabilities x10, 75 and up)
#   BAKE_WEIGHTS   1: download GoogLeNet's weights (53.5 MB) into the image
# NVIDIA's CUDA images can stand in for debian:12 (untested here: unreachable), e.g.
#   --build-arg BASE_IMAGE=nvidia/cuda:13.0.2-devel-ubuntu24.04 \
#   --build-arg RUNTIME_IMAGE=nvidia/cuda:13.0.2-runtime-ubuntu24.04
# CUDA still comes from the wheels (docker/cuda-toolkit.sh); the driver from --gpus all.
# Behind a TLS-intercepting proxy, give its CA bundle as a build secret:
#   --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt
ARG BASE_IMAGE=debian:12
ARG RUNTIME_IMAGE=debian:12

# ---------------------------------------------------------------- build stage
# The steps that do not depend on the variant come first: the CPU and GPU builds
# share their layers.
FROM ${BASE_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

COPY docker/install-build-deps.sh docker/with-ca.sh /src/docker/
RUN /src/docker/install-build-deps.sh

COPY requirements.txt /src/
RUN --mount=type=secret,id=ca-bundle python3 -m venv /opt/venv \
    && /src/docker/with-ca.sh /opt/venv/bin/pip install --quiet -r /src/requirements.txt

ARG CAFFE_DEVICE=cuda
ARG CUDA_ARCH="75 80 86 89 90"
# GPU: CUDA from NVIDIA's pinned PyPI wheels. The runtime libraries go into the venv
# (the final stage carries them); nvcc and the headers into /opt/cuda-toolkit, which
# stays in this stage.
COPY docker/cuda-toolkit.sh docker/cuda-toolkit.txt docker/cuda-runtime.txt /src/docker/
RUN --mount=type=secret,id=ca-bundle if [ "${CAFFE_DEVICE}" = cuda ]; then \
      /src/docker/with-ca.sh /src/docker/cuda-toolkit.sh --python /opt/venv/bin/python --dest /opt/cuda-toolkit; \
    fi

# The same recipe as the host set-up (scripts/setup.sh).
COPY docker/build-caffe.sh docker/caffe-gtests.sh docker/apply-patches.sh docker/Makefile.config docker/caffe-source.env docker/runtime-packages.sh /src/docker/
COPY docker/patches/ /src/docker/patches/
RUN --mount=type=secret,id=ca-bundle /src/docker/with-ca.sh /src/docker/build-caffe.sh --python /opt/venv/bin/python --device "${CAFFE_DEVICE}" \
      --cuda-arch "${CUDA_ARCH}" --cuda-toolkit /opt/cuda-toolkit --out /opt/caffe-build --work /tmp/caffe-work \
    && rm -rf /tmp/caffe-work
RUN purelib="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && cp -r /opt/caffe-build/caffe "$purelib/caffe" \
    && /src/docker/runtime-packages.sh "$purelib" > /opt/runtime-packages.txt \
    && rm -rf "$purelib"/nvidia/*/include "$purelib"/nvidia/*/lib/*.a
# (the CUDA wheels' headers and static libraries are for building only)

COPY pyproject.toml README.md LICENSE /home/user/breaking-nn/
COPY breaking_nn/ /home/user/breaking-nn/breaking_nn/
RUN --mount=type=secret,id=ca-bundle \
    /src/docker/with-ca.sh /opt/venv/bin/pip install --quiet --no-deps -e /home/user/breaking-nn
# JupyterLab never asks about, or fetches, news, and checks for no updates (as `make notebook`).
COPY docker/jupyterlab-overrides.json /opt/venv/share/jupyter/lab/settings/overrides.json

ARG BAKE_WEIGHTS=0
RUN --mount=type=secret,id=ca-bundle mkdir -p /weights \
    && if [ "${BAKE_WEIGHTS}" = 1 ]; then \
         /src/docker/with-ca.sh /opt/venv/bin/python -m breaking_nn.weights --quiet --dest /weights/bvlc_googlenet.caffemodel; \
       fi

# ---------------------------------------------------------------- final stage
FROM ${RUNTIME_IMAGE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=build /opt/runtime-packages.txt /tmp/
RUN apt-get update \
    && xargs -a /tmp/runtime-packages.txt apt-get install -y --no-install-recommends python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
    && useradd --create-home --uid 1000 --shell /bin/bash user

COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=user:user /home/user/breaking-nn /home/user/breaking-nn
COPY --chown=user:user models/ /home/user/breaking-nn/models/
COPY --chown=user:user notebooks/ /home/user/breaking-nn/notebooks/
COPY --chown=user:user tests/ /home/user/breaking-nn/tests/
COPY --chown=user:user docker/start-jupyter.sh /usr/local/bin/start-jupyter
COPY --chown=user:user docker/start-app.sh /usr/local/bin/start-app
COPY --chown=user:user docker/entrypoint.sh /usr/local/bin/breaking-nn-entrypoint
COPY --from=build --chown=user:user /weights /weights

# NVIDIA_DRIVER_CAPABILITIES: what `docker run --gpus all` maps in from the host's
# driver (libcuda.so.1 among it); the CUDA runtime itself is in /opt/venv.
ENV PATH=/opt/venv/bin:$PATH \
    BREAKING_NN_WEIGHTS=/weights/bvlc_googlenet.caffemodel \
    APP_NOTEBOOK=/home/user/breaking-nn/notebooks/app.ipynb \
    MPLBACKEND=Agg \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 1000:1000
WORKDIR /home/user/breaking-nn
# Weights download here on first use; mount a volume to keep them.
VOLUME /weights
# `docker run ... breaking-nn` Jupyter Lab (8888); `... breaking-nn app` the attack app (Voila, 8866);
# any other command runs as given.
EXPOSE 8888 8866
ENTRYPOINT ["breaking-nn-entrypoint"]
CMD ["lab"]
