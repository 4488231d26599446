# Two extra ways to build the same sources (each in its own build directory;
# the default build is untouched):
#
#   -DVW_SANITIZE=address,undefined   every target with ASan + UBSan, any
#                                     finding fatal (scripts/test-asan.sh: build-asan)
#   -DVW_FUZZ=ON                      clang-16 libFuzzer harnesses of tests/fuzz,
#                                     every library instrumented for coverage and
#                                     built with ASan + UBSan (tools/fuzz: build-fuzz)
#
# The BPF object is compiled by cmake/bpf.cmake's clang either way: sanitizer
# flags never reach the BPF target.
set(VW_SANITIZE "" CACHE STRING "sanitizers for every target, e.g. address,undefined")
option(VW_FUZZ "build the libFuzzer harnesses (tests/fuzz; needs clang)" OFF)

if(VW_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "VW_FUZZ needs clang (configure with -DCMAKE_CXX_COMPILER=clang++-16 "
                        "-DCMAKE_C_COMPILER=clang-16, or use tools/fuzz/run build)")
  endif()
  if(NOT VW_SANITIZE)
    set(VW_SANITIZE address,undefined)
  endif()
  # Libraries get coverage edges; only the harness executables link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

if(VW_SANITIZE)
  # -fno-sanitize-recover: a UBSan finding aborts (a failed test, a fuzz crash),
  # it is not a line in a log nobody reads.
  add_compile_options(-fsanitize=${VW_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${VW_SANITIZE})
  if(VW_FUZZ)
    # No UBSan vptr check in the fuzzers: it probes memory with a pipe write
    # per virtual call and made the gate harness ten times slower (Asio is all
    # virtual calls). The sanitizer test build (VW_SANITIZE alone) keeps it.
    add_compile_options(-fno-sanitize=vptr)
  endif()
endif()
