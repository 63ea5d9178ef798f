# The fuzz targets' replay in ctest: every tools/fuzz/fuzz_*.c is built again with the
# ordinary compiler and tools/fuzz/replay_main.c (no libFuzzer, so also under the
# SOCKRPC_SANITIZE build or valgrind), and test fuzz.replay.<target> runs it once on every
# file of tools/fuzz/corpus and tools/fuzz/regressions (each target gets every input: an
# input for another target must not hurt either). The line "fuzz-build: KIND [FLAGS]" in
# a target's source says what it links: daemon (sockrpcd_core) or client (libsockrpc);
# without it, fuzz_client*.c link the client, the others the daemon.
set(_fuzz_dir ${PROJECT_SOURCE_DIR}/tools/fuzz)
file(GLOB _fuzz_targets CONFIGURE_DEPENDS ${_fuzz_dir}/fuzz_*.c)
foreach(_src ${_fuzz_targets})
  get_filename_component(_name ${_src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" _name ${_name})
  file(STRINGS ${_src} _spec REGEX "fuzz-build:" LIMIT_COUNT 1)
  string(REGEX REPLACE ".*fuzz-build: *" "" _spec "${_spec}")
  separate_arguments(_spec UNIX_COMMAND "${_spec}")
  list(LENGTH _spec _n)
  set(_kind daemon)
  if(_name MATCHES "^(fuzz_)?client")
    set(_kind client)
  endif()
  set(_flags "")
  if(_n GREATER 0)
    list(GET _spec 0 _kind)
  endif()
  if(_n GREATER 1)
    list(SUBLIST _spec 1 -1 _flags)
  endif()
  set(_exe fuzz_replay_${_name})
  add_executable(${_exe} ${_fuzz_dir}/replay_main.c ${_src})
  target_compile_options(${_exe} PRIVATE ${_flags})
  if(_kind STREQUAL "client")
    target_link_libraries(${_exe} PRIVATE sockrpc_static sockrpc_proto)
    target_include_directories(${_exe} PRIVATE ${PROJECT_SOURCE_DIR}/client)
  else()
    target_link_libraries(${_exe} PRIVATE sockrpcd_core)
  endif()
  target_link_libraries(${_exe} PRIVATE ${CMAKE_DL_LIBS})
  add_test(NAME fuzz.replay.${_name}
           COMMAND ${_exe} ${_fuzz_dir}/corpus ${_fuzz_dir}/regressions)
  # Replays stay well under a minute.
  set_tests_properties(fuzz.replay.${_name} PROPERTIES TIMEOUT 120)
endforeach()
