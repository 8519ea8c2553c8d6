"""AmoebaNet-D (tensorflow/tpu amoeba_net, amoeba_net_d cells)."""
