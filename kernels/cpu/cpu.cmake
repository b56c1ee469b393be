# cpu.cmake - the float32 cpu backend (kb_backend_cpu), part of kbcore: every
# kernels/cpu/*.c (one file per op, cpu_<op>.c, plus the backend itself).
file(GLOB KB_CPU_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.c)
target_sources(kbcore PRIVATE ${KB_CPU_SOURCES})
