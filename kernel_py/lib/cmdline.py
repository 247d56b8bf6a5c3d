# Kernel command line: "slab=slob mem_debug quiet" -> {"slab": "slob", "mem_debug": "", ...}


def parse(text):
    params = {}
    for word in text.split():
        if "=" in word:
            key, value = word.split("=", 1)
            params[key] = value
        else:
            params[word] = ""
    return params
