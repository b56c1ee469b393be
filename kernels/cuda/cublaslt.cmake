# kernels/cuda/cublaslt.cmake - the cublaslt backend (FP8 GEMM through cuBLASLt).
# Included by the top CMakeLists.txt when the CUDA toolkit is found.
#
# The CUDA runtime is linked statically (CUDA::cudart_static): kbench starts on a
# machine without a driver, and the backend's probe() says why it is unavailable.
# cuBLASLt itself is a shared library (its static archive is far too big to carry).

# Host-only logic (names, identity formatting, scale layouts, checks): needs
# cuBLASLt's headers for the enum values, links nothing from CUDA.
add_library(kb_cublaslt_host STATIC kernels/cuda/cublaslt_host.c)
target_include_directories(kb_cublaslt_host PUBLIC ${CMAKE_SOURCE_DIR} ${CUDAToolkit_INCLUDE_DIRS})
target_link_libraries(kb_cublaslt_host PUBLIC kbref)

add_library(kb_cublaslt STATIC kernels/cuda/backend_cublaslt.c)
target_link_libraries(kb_cublaslt PUBLIC kb_cublaslt_host kbref CUDA::cudart_static CUDA::cublasLt)

# bench/backends.c lists kb_backend_cublaslt when KB_HAVE_CUBLASLT is defined.
target_compile_definitions(kbcore PRIVATE KB_HAVE_CUBLASLT=1)
target_link_libraries(kbcore PUBLIC kb_cublaslt)
