# Number formats (ref/formats.c): hand-computed Q4_K/Q6_K blocks, codec
# self-consistency sweeps and ggml's golden Q4_K quantizer output (C, no Python);
# the codecs against ml_dtypes/numpy and the K-quants against gguf (Python oracles).
# test_formats compiles ref/formats.c itself so it depends on nothing else in kbref.
add_executable(test_formats ${CMAKE_CURRENT_SOURCE_DIR}/test_formats.c ${CMAKE_SOURCE_DIR}/ref/formats.c)
target_include_directories(test_formats PRIVATE ${CMAKE_SOURCE_DIR})
target_link_libraries(test_formats PRIVATE m)
add_test(NAME formats_c COMMAND test_formats)
set_tests_properties(formats_c PROPERTIES TIMEOUT 60)

# Each oracle test also runs with numpy's SIMD dispatch off (tests/oracle/oracle.cmake).
include(${CMAKE_CURRENT_LIST_DIR}/oracle/oracle.cmake)
kb_oracle_test(formats_oracle_codecs ${CMAKE_CURRENT_SOURCE_DIR}/oracle/test_codecs.py)
kb_oracle_test(formats_oracle_kquants ${CMAKE_CURRENT_SOURCE_DIR}/oracle/test_kquants.py)
