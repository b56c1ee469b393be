# cpu.cmake - the float32 cpu backend (kb_backend_cpu), part of kbcore.
target_sources(kbcore PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/backend_cpu.c
  ${CMAKE_CURRENT_LIST_DIR}/cpu_dequant_q4k.c
  ${CMAKE_CURRENT_LIST_DIR}/cpu_rmsnorm.c
  ${CMAKE_CURRENT_LIST_DIR}/cpu_gemm_fp8.c
  ${CMAKE_CURRENT_LIST_DIR}/cpu_rope_neox.c
  ${CMAKE_CURRENT_LIST_DIR}/cpu_attention.c
  ${CMAKE_CURRENT_LIST_DIR}/cpu_embed.c)
