"""A one-layer Keras model on 3 inputs, compiled with Adam and MSE, shared by the callback and
checkpoint tests (not a test module)."""


def tiny_model():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model
