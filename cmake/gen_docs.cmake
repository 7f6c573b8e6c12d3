# gen_docs.cmake - writes tassa.1 and tassa.env from the built binary's settings table.
# cmake -DTASSA=path/to/tassa -DOUT=dir -P gen_docs.cmake
foreach(kind man env)
  if(kind STREQUAL "man")
    set(file "${OUT}/tassa.1")
  else()
    set(file "${OUT}/tassa.env")
  endif()
  execute_process(COMMAND "${TASSA}" settings --${kind} OUTPUT_FILE "${file}.tmp"
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "tassa settings --${kind} failed: ${rc}")
  endif()
  file(RENAME "${file}.tmp" "${file}")
endforeach()
