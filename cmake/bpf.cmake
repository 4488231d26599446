# Compiles bpf/vaultwall.bpf.c with clang's BPF target and turns the object
# into a libbpf skeleton header (bpftool gen skeleton), which embeds the object
# in every binary that includes it: nothing loads a loose .o at run time.
find_program(CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
execute_process(COMMAND gcc -print-multiarch OUTPUT_VARIABLE VW_MULTIARCH
                OUTPUT_STRIP_TRAILING_WHITESPACE)

set(VW_BPF_GEN_DIR ${CMAKE_BINARY_DIR}/gen)
file(MAKE_DIRECTORY ${VW_BPF_GEN_DIR})

# vw_bpf_object(NAME SOURCE): NAME.bpf.o and NAME.skel.h in ${VW_BPF_GEN_DIR}.
function(vw_bpf_object name source)
  set(obj ${VW_BPF_GEN_DIR}/${name}.bpf.o)
  set(skel ${VW_BPF_GEN_DIR}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CLANG} -O2 -g -Wall -Werror -target bpf
            -I/usr/include/${VW_MULTIARCH} -I${CMAKE_SOURCE_DIR}/bpf
            -c ${source} -o ${obj}
    DEPENDS ${source} ${CMAKE_SOURCE_DIR}/bpf/vaultwall_abi.h
            ${CMAKE_SOURCE_DIR}/bpf/parsing.h ${CMAKE_SOURCE_DIR}/bpf/classify.h
            ${CMAKE_SOURCE_DIR}/bpf/maps.h
    COMMENT "BPF ${name}")
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "skeleton ${name}")
  add_custom_target(${name}_skel DEPENDS ${skel})
endfunction()
