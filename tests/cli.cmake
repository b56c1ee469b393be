# CLI: every bad input exits 2 with its one-line message; --list-* work; the CSV
# and JSON Lines columns match the schema documented in results/README.md;
# Google Benchmark's JSON output is valid and names every timed row.
add_test(NAME cli_bad_input_and_schema
         COMMAND ${KB_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.py $<TARGET_FILE:kbench> ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_bad_input_and_schema PROPERTIES TIMEOUT 300)
