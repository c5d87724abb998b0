"""llama-cpp-python's OpenAI-compatible server, with llama.cpp's extra CPU buffer types off
(weight repacking and the AMX kernels): on a CPU with AMX (seen on a Sapphire Rapids guest),
llama-cpp-python 0.3.36 built for the host segfaults in ggml_backend_amx_mul_mat at the first
token. Plain CPU buffers serve SmolLM2-135M at about the same speed on two cores."""

import runpy

import llama_cpp.llama_cpp as bindings

_default_params = bindings.llama_model_default_params


def _model_params():
    params = _default_params()
    params.use_extra_bufts = False
    return params


bindings.llama_model_default_params = _model_params  # what llama_cpp.Llama asks for

if __name__ == "__main__":
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
