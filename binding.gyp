{
  "targets": [
    {
      "target_name": "shoal_native",
      "sources": [
        "native/addon/addon.cc"
      ],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include\")"
      ],
      "defines": [
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NAPI_VERSION=8"
      ],
      "cflags_cc": [
        "-std=c++17",
        "-Wall"
      ]
    },
    {
      "target_name": "shoal-init",
      "type": "executable",
      "sources": [
        "native/helper/init.c",
        "native/helper/plan.c",
        "native/helper/mounts.c",
        "native/helper/seccomp.c",
        "native/helper/caps.c",
        "native/helper/util.c"
      ],
      "cflags": [
        "-std=gnu11",
        "-Wall",
        "-O2",
        "-D_GNU_SOURCE"
      ],
      "ldflags": [
        "-ldl"
      ],
      "libraries": [
        "-ldl"
      ]
    },
    {
      "target_name": "shoal-probe",
      "type": "executable",
      "sources": [
        "native/probe/probe.c"
      ],
      "cflags": [
        "-std=gnu11",
        "-Wall",
        "-O2",
        "-D_GNU_SOURCE"
      ],
      "ldflags": [
        "-static"
      ]
    },
    {
      "target_name": "containerd-shim-shoal-v2",
      "type": "executable",
      "sources": [
        "native/launcher/launcher.c",
        "native/launcher/group.c",
        "native/launcher/sha256.c"
      ],
      "defines": [
        "SHOAL_NODE_BUILD=\"<!(node -p process.execPath)\""
      ],
      "cflags": [
        "-std=gnu11",
        "-Wall",
        "-O2",
        "-D_GNU_SOURCE"
      ],
      "ldflags": [
        "-static"
      ]
    }
  ]
}
