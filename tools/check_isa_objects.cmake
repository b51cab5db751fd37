# Fails the build if an object compiled with extra instruction sets (the x86
# kernel files) defines a weak or unique symbol or a static initializer.
# Either runs that file's instructions outside its run-time CPU check: a weak
# symbol (an out-of-line std:: template member, say) may be the one copy the
# linker keeps for the whole module, and a static initializer runs at import.
# Seen on an AVX2-only CPU: `import specbound_cpp` died with SIGILL in the
# AVX-512 file's initializer of its kernel table.
#
# cmake -DNM=<nm> -DOBJECTS=<a|b|c> -DSTAMP=<file> -P check_isa_objects.cmake
string(REPLACE "|" ";" objects "${OBJECTS}")
set(problems "")
foreach(obj IN LISTS objects)
  execute_process(COMMAND "${NM}" "${obj}" OUTPUT_VARIABLE symbols RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "check_isa_objects: ${NM} failed on ${obj}")
  endif()
  string(REPLACE "\n" ";" lines "${symbols}")
  foreach(line IN LISTS lines)
    # nm: "<address> <type> <name>"; W/V weak, u unique global (DW.ref.*:
    # the exception personality's address, data only)
    if((line MATCHES "^[0-9a-fA-F]+ [WVu] (.*)$" AND NOT line MATCHES " DW\\.ref\\.")
       OR line MATCHES "_GLOBAL__sub_I_")
      string(APPEND problems "\n  ${obj}: ${line}")
    endif()
  endforeach()
endforeach()
if(problems)
  message(FATAL_ERROR "check_isa_objects: symbols that run instruction-set code outside the CPU check "
                      "(use ScratchVector from cpp/kernels/isa_scratch.h, constexpr tables):${problems}")
endif()
file(WRITE "${STAMP}" "ok\n")
