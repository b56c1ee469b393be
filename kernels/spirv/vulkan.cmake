# vulkan.cmake - the vulkan backend: GLSL 450 compute shaders -> SPIR-V (Vulkan 1.2) at build
# time, validated with spirv-val, embedded into kbcore as uint32 arrays (glslangValidator --vn),
# so kbench runs without the build folder. Included by the root CMakeLists.txt only when
# Vulkan and glslangValidator were found.
if(NOT SPIRV_VAL)
  message(FATAL_ERROR "vulkan backend: spirv-val not found. Install spirv-tools (Debian: apt-get install "
                      "spirv-tools): every SPIR-V module is validated at build time.")
endif()

set(KB_SPV_SRC ${CMAKE_SOURCE_DIR}/kernels/spirv)
set(KB_SPV_DIR ${CMAKE_BINARY_DIR}/spirv)
file(MAKE_DIRECTORY ${KB_SPV_DIR})
set(KB_SPV_INCLUDES ${KB_SPV_SRC}/kb_common.glsl ${KB_SPV_SRC}/q4k.glsl)
set(KB_SPV_HEADERS "")

# kb_spirv(NAME SOURCE [-DDEFINE ...]): one named module (a -D build of SOURCE) ->
# ${KB_SPV_DIR}/NAME.spv (validated) and spv_NAME.h defining kb_spv_NAME[].
function(kb_spirv name src)
  set(spv ${KB_SPV_DIR}/${name}.spv)
  set(hdr ${KB_SPV_DIR}/spv_${name}.h)
  add_custom_command(
    OUTPUT ${hdr} ${spv}
    COMMAND ${GLSLANG_VALIDATOR} --quiet -V --target-env vulkan1.2 ${ARGN} -o ${spv} ${KB_SPV_SRC}/${src}
    COMMAND ${SPIRV_VAL} --target-env vulkan1.2 ${spv}
    COMMAND ${GLSLANG_VALIDATOR} --quiet -V --target-env vulkan1.2 ${ARGN} --vn kb_spv_${name} -o ${hdr}
            ${KB_SPV_SRC}/${src}
    DEPENDS ${KB_SPV_SRC}/${src} ${KB_SPV_INCLUDES}
    COMMENT "SPIR-V ${name}: ${src} ${ARGN} (glslangValidator, spirv-val)"
    VERBATIM)
  set(KB_SPV_HEADERS ${KB_SPV_HEADERS} ${hdr} PARENT_SCOPE)
endfunction()

kb_spirv(dequant_q4k dequant_q4k.comp)
kb_spirv(rmsnorm rmsnorm.comp)
kb_spirv(rope_neox rope_neox.comp)
kb_spirv(attention attention.comp)
kb_spirv(embed_q4k embed.comp -DKB_TABLE_Q4K)
kb_spirv(embed_q6k embed.comp -DKB_TABLE_Q6K)
kb_spirv(embed_f16 embed.comp -DKB_TABLE_F16)
kb_spirv(embed_f32 embed.comp -DKB_TABLE_F32)
kb_spirv(gemm_gemv gemm_fp8.comp)
kb_spirv(gemm_gemv_out16 gemm_fp8.comp -DKB_OUT16)
kb_spirv(gemm_tiled gemm_fp8.comp -DKB_GEMM_TILED)
kb_spirv(gemm_tiled_out16 gemm_fp8.comp -DKB_GEMM_TILED -DKB_OUT16)

target_sources(kbcore PRIVATE ${KB_SPV_SRC}/backend_vulkan.c ${KB_SPV_HEADERS})
target_include_directories(kbcore PRIVATE ${KB_SPV_DIR})
target_link_libraries(kbcore PUBLIC Vulkan::Vulkan)
target_compile_definitions(kbcore PUBLIC KB_HAVE_VULKAN)
