/* A stand-in for the NVIDIA driver's libcuda.so.1, for the device-check tests on
 * machines without a GPU: the four driver API calls breaking_nn asks, answering
 * what the environment says (FAKE_CUDA_INIT: cuInit's result, FAKE_CUDA_COUNT:
 * the GPU count, FAKE_CUDA_VERSION: the driver's CUDA version, e.g. 13000). */
#include <stdlib.h>

static int env(const char *name, int fallback) {
    const char *v = getenv(name);
    return v ? atoi(v) : fallback;
}
int cuInit(unsigned int flags) { (void)flags; return env("FAKE_CUDA_INIT", 0); }
int cuDriverGetVersion(int *version) { *version = env("FAKE_CUDA_VERSION", 13000); return 0; }
int cuDeviceGetCount(int *count) { *count = env("FAKE_CUDA_COUNT", 1); return 0; }
int cuGetErrorName(int code, const char **name) {
    *name = code == 100 ? "CUDA_ERROR_NO_DEVICE" : code == 999 ? "CUDA_ERROR_UNKNOWN" : "CUDA_ERROR_OTHER";
    return 0;
}
