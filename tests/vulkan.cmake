# vulkan.cmake (tests) - the vulkan backend on whatever Vulkan device is here (lavapipe in CI).
#   vulkan_selftest           the backend through kb_backend alone, inline fp64 references: the
#                             device facts, every op/variant, f16/bf16 rounding, fp8 codes bit-exact,
#                             views at offsets, a chained enqueue and a recorded replay, timestamps,
#                             cache flush, broken variants caught, the missing-feature path, reset
#   vulkan_gemv_sg_plan       gemm_fp8 gemv_sg's plan without a device: the layout as written (NOTES.md's
#                             table) and at --tune points ROWS, SGS (spec constants, workgroups), refusals
#   vulkan_smoke              kbench --op all --shapes smoke --backend vulkan: every row passes
#                             (cold: caches flushed; every smoke case is under the 1 GFLOP default
#                             of KB_VK_CPU_MAX_GFLOP, the limit that keeps big cases off lavapipe)
#   vulkan_broken_short_write KB_TEST_VARIANTS=1 test_short_write: every row of every op fails (1 unwritten)
#   vulkan_broken_rope_gptj   KB_TEST_VARIANTS=1 test_rope_gptj: every row fails
#   vulkan_missing_feature    a hidden device feature gives not_supported rows naming it
#   vulkan_list_backends      --list-backends shows the device list
#   vulkan_tune               --tune BLOCK (the workgroup size): every point passes parity, values
#                             no workgroup takes are not_supported saying why
#   vulkan_gemv_sg_tune       --tune ROWS, SGS, WDEC on gemm_fp8 gemv_sg: every point passes parity (n = 1, 2,
#                             5, 16; K = 200, 101, 1000; vec128, blk128, e5m2 X), impossible points are
#                             not_supported saying why
# Exit code 77 = no usable Vulkan device: CTest reports the test as skipped, never passed.
if(Vulkan_FOUND AND GLSLANG_VALIDATOR)
  add_executable(test_vulkan_selftest ${CMAKE_SOURCE_DIR}/tests/test_vulkan_selftest.c)
  target_link_libraries(test_vulkan_selftest PRIVATE kbcore)
  add_test(NAME vulkan_selftest COMMAND test_vulkan_selftest)
  add_executable(test_vulkan_gemv_plan ${CMAKE_SOURCE_DIR}/tests/test_vulkan_gemv_plan.c)
  target_link_libraries(test_vulkan_gemv_plan PRIVATE kbcore)
  add_test(NAME vulkan_gemv_sg_plan COMMAND test_vulkan_gemv_plan)

  set(KB_VK_TEST_OUT ${CMAKE_CURRENT_BINARY_DIR}/vulkan_rows)
  foreach(mode smoke short gptj feature list tune gemv_tune uploads)
    if(mode STREQUAL "short")
      set(name vulkan_broken_short_write)
    elseif(mode STREQUAL "gptj")
      set(name vulkan_broken_rope_gptj)
    elseif(mode STREQUAL "feature")
      set(name vulkan_missing_feature)
    elseif(mode STREQUAL "list")
      set(name vulkan_list_backends)
    elseif(mode STREQUAL "tune")
      set(name vulkan_tune)
    elseif(mode STREQUAL "gemv_tune")
      set(name vulkan_gemv_sg_tune)
    elseif(mode STREQUAL "uploads")
      set(name vulkan_device_copies)
    else()
      set(name vulkan_smoke)
    endif()
    add_test(NAME ${name} COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_vulkan_cli.sh $<TARGET_FILE:kbench> ${mode}
                                  ${KB_VK_TEST_OUT})
    set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 180)
  endforeach()
  set_tests_properties(vulkan_selftest PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 180)
else()
  add_test(NAME vulkan_not_built
           COMMAND sh -c "echo 'SKIP - vulkan backend not built: Vulkan (libvulkan-dev) or glslangValidator (glslang-tools) not found at configure time'; exit 77")
  set_tests_properties(vulkan_not_built PROPERTIES SKIP_RETURN_CODE 77)
endif()
