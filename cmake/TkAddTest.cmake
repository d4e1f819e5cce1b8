# tk_add_test(NAME <name> LABEL unit|integration|fault|e2e SOURCES <files> [LIBS <libs>] [TIMEOUT s])
# One ctest per test file (libssh AddCMockaTest.cmake). Integration tests get the local stack's
# environment from the caller (scripts/test.sh exports it) and are serialised with RESOURCE_LOCK
# because they share one broker and one PostgreSQL server.
function(tk_add_test)
    cmake_parse_arguments(T "" "NAME;LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
    add_executable(${T_NAME} ${T_SOURCES})
    target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
    # tk_test_main.h: the suites' one main().
    target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
    add_test(NAME ${T_NAME} COMMAND ${T_NAME})
    if(NOT T_TIMEOUT)
        set(T_TIMEOUT 120)
    endif()
    set_tests_properties(${T_NAME} PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT})
    if(NOT T_LABEL STREQUAL "unit")
        set_tests_properties(${T_NAME} PROPERTIES RESOURCE_LOCK stack)
    endif()
endfunction()
