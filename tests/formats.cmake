# Number formats (ref/formats.c): hand-computed Q4_K/Q6_K blocks, codec
# self-consistency sweeps and ggml's golden Q4_K quantizer output (C, no Python);
# the codecs against ml_dtypes/numpy and the K-quants against gguf (Python oracles).
# test_formats compiles ref/formats.c itself so it depends on nothing else in kbref.
add_executable(test_formats ${CMAKE_CURRENT_SOURCE_DIR}/test_formats.c ${CMAKE_SOURCE_DIR}/ref/formats.c)
target_include_directories(test_formats PRIVATE ${CMAKE_SOURCE_DIR})
target_link_libraries(test_formats PRIVATE m)
add_test(NAME formats_c COMMAND test_formats)
set_tests_properties(formats_c PROPERTIES TIMEOUT 60)

add_test(NAME formats_oracle_codecs COMMAND ${KB_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/oracle/test_codecs.py)
add_test(NAME formats_oracle_kquants COMMAND ${KB_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/oracle/test_kquants.py)
set_tests_properties(formats_oracle_codecs formats_oracle_kquants PROPERTIES
                     ENVIRONMENT KB_REF_LIB=$<TARGET_FILE:kbref_py>
                     TIMEOUT 120)
