# Architecture code (Linux's arch/).
