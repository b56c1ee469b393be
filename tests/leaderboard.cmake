# tools/leaderboard.py on the fixtures in tests/fixtures/: a fast failing row never
# ranks, ranks follow the median time among passing rows, kbench-row-1/-2 CSV and
# JSON Lines load, the markdown renders, the plots are real PNGs, a slowdown beyond
# noise and a changed verdict are flagged; then the leaderboard of a real cpu run.
add_test(NAME leaderboard_rank_plots_regressions
         COMMAND ${KB_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_leaderboard.py ${CMAKE_SOURCE_DIR}
                 $<TARGET_FILE:kbench>)
set_tests_properties(leaderboard_rank_plots_regressions PROPERTIES TIMEOUT 300)
