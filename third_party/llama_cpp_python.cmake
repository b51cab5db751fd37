# Locate the llama.cpp that llama-cpp-python installed, so that our extension
# links against (and at run time loads) the very same libggml / libllama.
#
# llama-cpp-python ships, under site-packages:
#   include/                      ggml.h, gguf.h, llama.h, ...
#   lib/cmake/{ggml,llama}/       CMake package configs
#   llama_cpp/lib/                the shared libraries llama_cpp loads
#
# Override with -DLLAMA_CPP_PYTHON_PREFIX=<site-packages> if Python cannot tell.

if(NOT LLAMA_CPP_PYTHON_PREFIX)
  if(DEFINED ENV{LLAMA_CPP_PYTHON_PREFIX})
    set(LLAMA_CPP_PYTHON_PREFIX "$ENV{LLAMA_CPP_PYTHON_PREFIX}")
  else()
    execute_process(
      COMMAND "${Python_EXECUTABLE}" -c
        "import importlib.util, pathlib; s = importlib.util.find_spec('llama_cpp'); print(pathlib.Path(s.origin).parent.parent if s else '')"
      OUTPUT_VARIABLE LLAMA_CPP_PYTHON_PREFIX
      OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _lcp_rc)
  endif()
endif()

if(NOT LLAMA_CPP_PYTHON_PREFIX OR NOT EXISTS "${LLAMA_CPP_PYTHON_PREFIX}/lib/cmake/ggml")
  message(FATAL_ERROR
    "llama-cpp-python (with its CMake packages) was not found by ${Python_EXECUTABLE}.\n"
    "Install it first (tools/setup.sh does), then build this package with "
    "--no-build-isolation, or pass -DLLAMA_CPP_PYTHON_PREFIX=<site-packages>.")
endif()

set(LLAMA_CPP_PYTHON_LIB_DIR "${LLAMA_CPP_PYTHON_PREFIX}/llama_cpp/lib")
# FORCE: a build folder reused from another environment must not keep linking
# against that environment's libraries.
set(ggml_DIR "${LLAMA_CPP_PYTHON_PREFIX}/lib/cmake/ggml" CACHE PATH "" FORCE)
set(llama_DIR "${LLAMA_CPP_PYTHON_PREFIX}/lib/cmake/llama" CACHE PATH "" FORCE)
find_package(ggml CONFIG REQUIRED)
find_package(llama CONFIG REQUIRED)
message(STATUS "llama-cpp-python prefix: ${LLAMA_CPP_PYTHON_PREFIX}")
