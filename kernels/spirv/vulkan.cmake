# vulkan.cmake - the vulkan backend: GLSL 450 compute shaders -> SPIR-V (Vulkan 1.2) at build
# time, validated with spirv-val, embedded into kbcore as uint32 arrays (glslangValidator --vn),
# so kbench runs without the build folder. Included by the root CMakeLists.txt only when
# Vulkan and glslangValidator were found.
#
# One op = <op>.comp (the shader, -D builds below) + <op>.c (its variants and dispatch plan,
# `vk_op_<op>`, vk_op.h); backend_vulkan.c is the device and knows no op.
if(NOT SPIRV_VAL)
  message(FATAL_ERROR "vulkan backend: spirv-val not found. Install spirv-tools (Debian: apt-get install "
                      "spirv-tools): every SPIR-V module is validated at build time.")
endif()

set(KB_SPV_SRC ${CMAKE_SOURCE_DIR}/kernels/spirv)
set(KB_SPV_DIR ${CMAKE_BINARY_DIR}/spirv)
file(MAKE_DIRECTORY ${KB_SPV_DIR})
file(GLOB KB_SPV_INCLUDES CONFIGURE_DEPENDS ${KB_SPV_SRC}/*.glsl)
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

kb_spirv(empty empty.comp) # the launch floor
kb_spirv(copy copy.comp)   # the bandwidth probe
# dequant_q4k
kb_spirv(dequant_q4k dequant_q4k.comp)
kb_spirv(dequant_q6k dequant_q4k.comp -DKB_BLOCKS_Q6K)
# rmsnorm, rope_neox, attention
kb_spirv(rmsnorm rmsnorm.comp)
kb_spirv(rope_neox rope_neox.comp)
kb_spirv(attention attention.comp)
# embed: one build per table type
kb_spirv(embed_q4k embed.comp -DKB_TABLE_Q4K)
kb_spirv(embed_q6k embed.comp -DKB_TABLE_Q6K)
kb_spirv(embed_f16 embed.comp -DKB_TABLE_F16)
kb_spirv(embed_f32 embed.comp -DKB_TABLE_F32)
# gemm_fp8: gemv / gemv_sg / tiled, f32 / 16-bit output
kb_spirv(gemm_gemv gemm_fp8.comp)
kb_spirv(gemm_gemv_out16 gemm_fp8.comp -DKB_OUT16)
kb_spirv(gemm_gemv_sg gemm_fp8.comp -DKB_GEMV_SG)
kb_spirv(gemm_gemv_sg_out16 gemm_fp8.comp -DKB_GEMV_SG -DKB_OUT16)
kb_spirv(gemm_tiled gemm_fp8.comp -DKB_GEMM_TILED)
kb_spirv(gemm_tiled_out16 gemm_fp8.comp -DKB_GEMM_TILED -DKB_OUT16)
# gemm_f32: gemv / tiled
kb_spirv(gemm_f32_gemv gemm_f32.comp)
kb_spirv(gemm_f32_tiled gemm_f32.comp -DKB_GEMM_TILED)
# the element-wise glue ops and quant_fp8: one build per input type
foreach(op add bias_add swiglu quant_fp8)
  kb_spirv(${op}_f32 ${op}.comp)
  kb_spirv(${op}_f16 ${op}.comp -DKB_IN_F16)
  kb_spirv(${op}_bf16 ${op}.comp -DKB_IN_BF16)
endforeach()
# ... and their vec4 builds (4 elements per thread, vector loads)
foreach(op add bias_add swiglu)
  kb_spirv(${op}_vec4_f32 ${op}.comp -DKB_VEC4)
  kb_spirv(${op}_vec4_f16 ${op}.comp -DKB_VEC4 -DKB_IN_F16)
  kb_spirv(${op}_vec4_bf16 ${op}.comp -DKB_VEC4 -DKB_IN_BF16)
endforeach()
# weight_fp8: one build per block type
kb_spirv(weight_fp8_q4k weight_fp8.comp)
kb_spirv(weight_fp8_q6k weight_fp8.comp -DKB_BLOCKS_Q6K)

file(GLOB KB_VK_SOURCES CONFIGURE_DEPENDS ${KB_SPV_SRC}/*.c)
target_sources(kbcore PRIVATE ${KB_VK_SOURCES} ${KB_SPV_HEADERS})
target_include_directories(kbcore PRIVATE ${KB_SPV_DIR})
target_link_libraries(kbcore PUBLIC Vulkan::Vulkan)
target_compile_definitions(kbcore PUBLIC KB_HAVE_VULKAN)
